# Shared by the scripts/install_*.sh scripts (sourced, not run): install Debian packages with apt-get.
#
#   source "$(dirname "$0")/apt_install.sh"
#   apt_install LABEL PACKAGE...
#
# Runs apt-get as root, or through passwordless sudo. Returns 0 when the packages are installed, 3 when this
# user or system cannot install them (the message on stderr says what to ask an administrator), otherwise
# apt-get's own failure status.
apt_install() {
    local label="$1"
    shift
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
            sudo="sudo -n"
        else
            echo "$label: missing, and this user cannot install system packages (not root, no sudo)." >&2
            echo "      Ask an administrator to run: apt-get install -y $*" >&2
            return 3
        fi
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "$label: missing, and apt-get is not available; install $* with your system's package manager" >&2
        return 3
    fi
    echo "$label: installing $* with apt-get"
    $sudo apt-get update -qq || return
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@"
}

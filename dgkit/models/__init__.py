"""DG's networks, one file per stage: IDSG (idsg.py), RFG (rfg.py), the VGG-Face identity encoder
(vggface.py), and the shared residual blocks (blocks.py)."""

from .idsg import IdentityClassifier, LandmarkDecoder, LandmarkDiscriminator, LandmarkEncoder
from .rfg import Generator, SketchDiscriminator, StyleEncoder
from .vggface import VGGFace, from_vgg_face_dag, to_vgg_face_dag

# checkpoint net name -> class, for the two official DG files (see dgkit.checkpoint)
RFG_NETS = {"generator": Generator, "style_encoder": StyleEncoder}
IDSG_NETS = {"linear_decoder": LandmarkDecoder, "lm_linear_encoder": LandmarkEncoder,
             "linear_discriminator": LandmarkDiscriminator, "linear_classfier": IdentityClassifier}

__all__ = ["Generator", "StyleEncoder", "SketchDiscriminator", "LandmarkEncoder", "LandmarkDecoder",
           "LandmarkDiscriminator", "IdentityClassifier", "VGGFace", "from_vgg_face_dag", "to_vgg_face_dag",
           "RFG_NETS", "IDSG_NETS"]

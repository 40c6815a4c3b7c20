"""Looking inside a trained CNN: saliency maps, Grad-CAM, class models, filters, feature maps.

- :func:`saliency`: image-specific class saliency (Simonyan et al. 2014), via captum.
- :func:`gradcam`: Grad-CAM (Selvaraju et al. 2017), via captum.
- :func:`class_model`: class model visualisation by gradient ascent (Simonyan et al. 2014).
- :func:`first_layer_filters` and :func:`feature_maps`: kernels and activations.

:class:`~cnnlab.interpret.render.Interpreter` runs a method and writes its
figures; ``cnnlab visualize`` and the ``callbacks=interpret`` callback use it.
Saliency and Grad-CAM need the optional ``captum`` (``pip install 'cnnlab[interpret]'``),
imported only when used.
"""

from __future__ import annotations

from cnnlab.interpret.class_model import ClassModels, class_model
from cnnlab.interpret.filters import feature_maps, first_layer_filters
from cnnlab.interpret.gradcam import gradcam
from cnnlab.interpret.layers import conv_layers, default_gradcam_layer, find_layer
from cnnlab.interpret.saliency import saliency

__all__ = [
    "ClassModels",
    "class_model",
    "conv_layers",
    "default_gradcam_layer",
    "feature_maps",
    "find_layer",
    "first_layer_filters",
    "gradcam",
    "saliency",
]

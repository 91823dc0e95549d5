"""2-D multimodal toys for InDI: data, training, Fig. 1, perception-distortion sweeps."""

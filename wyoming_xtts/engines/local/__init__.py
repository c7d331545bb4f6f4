"""XTTS-v2 on this machine (CPU or CUDA) through coqui-tts: `engine.XttsEngine`.

Only this package imports PyTorch and coqui-tts; the cloud proxy never loads it.
"""

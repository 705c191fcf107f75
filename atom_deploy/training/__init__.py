"""Training of the embedded demo model on the generated video world (`atom-deploy train-demo`).

    corpus.py     the world's captions and text tasks, for the kit's BPE trainer (text/tokenizers.py)
    examples.py   caption and text-task examples as token ids (+ frames), in batches
    forward.py    teacher-forced logits over the decoder, and the masked loss
    loop.py       TrainConfig and the seeded training loop; writes a kit model folder

Torch is needed here; the runners never import this package.
"""

"""Quality evaluation in the shape of the paper's tables.

    caption_metrics.py  BLEU@4, METEOR, ROUGE-L, CIDEr through the COCO caption evaluation
    data.py             the demo test split as clip tensors + references + held-out queries
    rows.py             one Session per table row (eager fp32 goes through the same decode loop)
    captioning.py       caption a clip set with one session, timed
    retrieval.py        text-to-video retrieval through generated captions: R@1/5/10
    stsb.py             MiniLM on STS-B dev: Pearson of cosine vs gold
    bounds.py           the paper's int8-vs-fp32 bounds and the deltas checked against them
    ablations.py        CIDEr and latency for beam, decode steps, clip size, frames
    report.py           console tables, JSON, CSV, PNG
"""

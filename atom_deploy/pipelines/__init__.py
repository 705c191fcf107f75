"""Video pipelines on real files, all served by one Session (each module loaded once).

    sources.py      which files a command works on; content sha256
    model_facts.py  clip contract and artifact identity, read off the Session's manifest
    captioning.py   file -> (window, caption) through caption_stream; errors kept per file
    index_db.py     the SQLite index: schema, transactions, parameterized queries
    indexing.py     index_videos: segment -> caption -> embed -> store, incremental, resumable
    ray_indexing.py index --engine ray: the same work on Ray Data actors, this process the only writer
    ray_captioner.py the Ray actor: one Session, clip ranges in, captions and embeddings out
    search.py       search: prompt -> MiniLM -> cosine top-k over one embedding matrix
    script.py       text-only decoder calls with atom_runner.task_formats prompts; script parsing
    stitch.py       clip ranges -> one H.264 mp4 (PyAV), normalised size and frame rate
    assemble.py     assemble: index -> top-k -> script -> reel.mp4 + reel.json
    qa.py           summarize / ask over a video's captions

Depends only on atom_runner, atom_deploy.video and atom_runner's task formats
(and Ray, imported only by --engine ray): no torch, no exporter.
"""

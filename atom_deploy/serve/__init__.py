"""`atom-deploy serve`: one resident Session and one index behind an HTTP JSON API.

    config.py         ServeConfig: the server's typed, frozen settings
    tensor_codec.py   the clip tensor's JSON encoding (shared with the client)
    schemas.py        one pydantic model per request and response (validation + OpenAPI)
    admission.py      Gate: bounded admission, QueueFull -> 503 with Retry-After
    decode_queue.py   the encoder thread and the decoder's one worker: waiting captions (and generations of one
                      prompt length) share one batched decoder call
    queued_session.py the Session as the pipelines see it, with decoder calls routed through the queue
    work_pool.py      bounded thread pool for the blocking non-decoder work (embed, search, video reads)
    index_handle.py   the resident index: one SQLite connection per thread on one file
    jobs.py           index / assemble as cancellable background jobs with progress
    job_tasks.py      what those jobs run, their checks and their progress estimate
    video_range.py    a clip tensor from a video file and a time range
    metrics.py        Prometheus metrics (requests, latency, queue depth, module loads)
    middleware.py     ASGI middleware: oversized bodies -> 413 before they are read; request metrics
    errors.py         every error mapped to its status code, in one place
    state.py          what the server holds (Session, queue, pool, jobs, index): opened before it listens, closed last
    routes_tasks.py   caption, embed, generate, tokenize, search, summarize, ask
    routes_jobs.py    index, assemble, jobs/{id} (GET progress, DELETE cancel)
    routes_ops.py     /healthz, /metrics, /v1/model
    app.py            create_app: lifespan, middleware, error handlers, routes
"""

"""atom-deploy search: rank the indexed clips against a text prompt (MiniLM cosine)."""

from __future__ import annotations

import argparse
import json

from atom_deploy.cli.pipeline_args import add_index_arg, note, open_index, seconds_span
from atom_deploy.cli.runner_args import add_session_args, open_session


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("search", help=__doc__.split(": ", 1)[1])
    add_session_args(p)
    add_index_arg(p, required=True)
    p.add_argument("-k", type=int, default=10, help="how many clips (default 10)")
    p.add_argument("--exact", action="store_true",
                   help="rank every clip (the reference) instead of the vector index's candidates")
    p.add_argument("prompt", help="what to look for, in words")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from atom_deploy.pipelines.search import ranked

    # Only MiniLM is used: no encoder worker process to start.
    with open_session(args, overlap="off") as session, open_index(args.index, session, create=False) as index:
        hits, how = ranked(session, index, args.prompt, args.k, exact=args.exact)
    if how.startswith("exact: "):
        note(f"{args.index} has no vector file yet (built before vector search, or it was removed): ranked every clip; "
             "the next `atom-deploy index` run into it builds the file")
    if args.json:
        print(json.dumps({"prompt": args.prompt, "index": str(args.index), "search": how.split(":")[0],
                          "results": [h.as_dict() for h in hits]}, ensure_ascii=False))
        return 0
    for hit in hits:
        print(f"{hit.rank:3d}  {hit.score:.4f}  {hit.video}  {seconds_span(hit.start_s, hit.end_s)}  {hit.caption}")
    return 0

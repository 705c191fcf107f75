"""atom-deploy inspect: print an artifact folder's manifest readably."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from atom_deploy.table import print_table
from atom_runner.manifest import load_manifest
from atom_runner.schema import Key


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("inspect", help=__doc__.split(": ", 1)[1])
    p.add_argument("folder", type=Path, help="an OUT/<backend> folder written by export")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    manifest = load_manifest(args.folder)
    data = manifest.data
    model = data[Key.MODEL]
    print(f"backend     {data[Key.BACKEND]}    kit {data[Key.KIT_VERSION]}    created {data[Key.CREATED]}")
    print(f"model       {model[Key.MODEL_NAME]}  ({model[Key.MODEL_SOURCE]})")
    print("decode      " + "  ".join(f"{k}={v}" for k, v in manifest.decode.items()))
    decode = manifest.decode
    if Key.KV_CACHE_BYTES in decode:
        print(f"kv cache    {decode[Key.KV_CACHE_BYTES] / 2**20:.1f} MiB float32 "
              f"({decode[Key.MAX_BATCH]} rows x {decode[Key.MAX_CONTEXT]} positions)")
    chat = data.get(Key.CHAT)
    chat_routes = "none" if chat is None else "template (Python)" + (" + parts (C++)" if Key.CHAT_PARTS in chat else "")
    print(f"text        add_bos={decode.get(Key.ADD_BOS, True)}  eos_ids={decode.get(Key.EOS_IDS, [decode[Key.EOS_ID]])}  "
          f"chat={chat_routes}")
    print(f"clip        shape={data[Key.CLIP][Key.SHAPE]}")
    print("versions    " + "  ".join(f"{k}={v}" for k, v in data[Key.VERSIONS].items()))
    print()
    rows = []
    for name, module in data[Key.MODULES].items():
        quant = module[Key.QUANTIZATION]
        mode = quant.get("mode", "?")
        size = sum(f[Key.BYTES] for f in module[Key.FILES])
        for entry_name, entry in module[Key.ENTRY_POINTS].items():
            ins = ", ".join(_tensors(entry[Key.INPUTS]))
            outs = ", ".join(_tensor(t) for t in entry[Key.OUTPUTS])
            rows.append((name, entry_name, entry[Key.FILE], f"{size:,}", mode, f"({ins}) -> ({outs})"))
    print_table(("module", "entry point", "file", "module bytes", "quant", "signature"), rows)
    return 0


def _tensors(specs: list[dict]) -> list[str]:
    """Each tensor, with a per-layer run (k_cache_0, v_cache_0, k_cache_1, ... of one shape)
    written once: `k_cache_i, v_cache_i (i < 30):float32[...]`, not sixty times."""
    texts = [_tensor(t) for t in specs]
    stems = [re.fullmatch(r"(.+)_(\d+)", t[Key.NAME]) for t in specs]
    if not any(stems):
        return texts
    first = next(i for i, m in enumerate(stems) if m)
    run = specs[first:]
    layers = 1 + max(int(m.group(2)) for m in stems[first:] if m)
    names = list(dict.fromkeys(m.group(1) for m in stems[first:] if m))
    if not all(stems[first:]) or len(run) != layers * len(names) or len({str(t[Key.SHAPE]) for t in run}) != 1:
        return texts
    typed = _tensor(run[0]).split(":", 1)[1]
    return texts[:first] + [", ".join(f"{n}_i" for n in names) + f" (i < {layers}):{typed}"]


def _tensor(spec: dict) -> str:
    shape = ",".join(str(s) for s in spec[Key.SHAPE])
    return f"{spec[Key.NAME]}:{spec[Key.DTYPE]}[{shape}]"

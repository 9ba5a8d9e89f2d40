#!/usr/bin/env python3
"""Rewrites a GGUF model with its Q4_0/Q4_1/Q5_0/Q5_1 tensors requantised
to Q8_0, copying every other tensor and all metadata unchanged.

Why: candle (under mistral.rs) has no SIMD kernel for Q4_1, so a Q4_1 model
runs several times slower on the CPU than the same model in Q8_0. Going from
4 to 8 bits adds no information back: the Q8_0 file computes (almost) the
same function as the Q4_1 one, only faster here.

Usage: requantize_gguf.py SRC.gguf DST.gguf
Needs the PyPI `gguf` package (and numpy). Writes DST.part, then renames it.
"""

import os
import sys

import gguf
from gguf import GGMLQuantizationType as Q
from gguf import GGUFValueType as V

# Block formats with no fast CPU kernel in candle, rewritten as Q8_0.
REQUANTISE = {Q.Q4_0, Q.Q4_1, Q.Q5_0, Q.Q5_1}
FILE_TYPE_MOSTLY_Q8_0 = 7


def copy_metadata(reader: gguf.GGUFReader, writer: gguf.GGUFWriter) -> None:
    for field in reader.fields.values():
        # GGUF.* are the header's own fields; the writer sets the
        # architecture itself.
        if field.name.startswith("GGUF.") or field.name == gguf.Keys.General.ARCHITECTURE:
            continue
        vtype = field.types[0]
        value = field.contents()
        if field.name == gguf.Keys.General.FILE_TYPE:
            value = FILE_TYPE_MOSTLY_Q8_0
        sub_type = field.types[-1] if vtype == V.ARRAY else None
        writer.add_key_value(field.name, value, vtype, sub_type=sub_type)


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    src, dst = sys.argv[1], sys.argv[2]
    reader = gguf.GGUFReader(src)
    arch_field = reader.get_field(gguf.Keys.General.ARCHITECTURE)
    if arch_field is None:
        print(f"{src}: no general.architecture", file=sys.stderr)
        return 1
    part = dst + ".part"
    writer = gguf.GGUFWriter(part, arch=arch_field.contents())
    copy_metadata(reader, writer)

    changed = 0
    for t in reader.tensors:
        if t.tensor_type in REQUANTISE:
            values = gguf.quants.dequantize(t.data, t.tensor_type)
            data = gguf.quants.quantize(values, Q.Q8_0)
            writer.add_tensor(t.name, data, raw_dtype=Q.Q8_0)
            changed += 1
        else:
            writer.add_tensor(t.name, t.data, raw_dtype=t.tensor_type)

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    os.replace(part, dst)
    print(f"requantised {changed} of {len(reader.tensors)} tensors to Q8_0", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

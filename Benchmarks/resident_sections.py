#!/usr/bin/env python3
"""Which of a running program's own pages are resident, by ELF section.

    python3 Benchmarks/resident_sections.py PID BINARY

Reads /proc/PID/pagemap (of a process of yours, or as root) for the mappings of BINARY, and
attributes each resident page to
the section of BINARY (`readelf -S`) at its address. Where an agent's RSS goes when it is
idle: docs/notes/pipeline-profile.md. Prints kB per section, largest first.
"""
import re
import struct
import subprocess
import sys
from collections import Counter

PAGE = 4096


def sections(binary):
    """(start, end, name) of each section that is loaded, by its link-time address."""
    found = []
    listing = subprocess.run(["readelf", "-S", "-W", binary], capture_output=True, text=True, check=True).stdout
    for line in listing.splitlines():
        m = re.match(r"\s*\[\s*\d+\]\s+(\S+)\s+\S+\s+([0-9a-f]+)\s+[0-9a-f]+\s+([0-9a-f]+)", line)
        if m and int(m.group(2), 16):
            start = int(m.group(2), 16)
            found.append((start, start + int(m.group(3), 16), m.group(1)))
    return found


def main():
    if len(sys.argv) != 3 or not sys.argv[1].isdigit():
        sys.exit(__doc__)
    try:
        resident(int(sys.argv[1]), sys.argv[2])
    except (OSError, subprocess.CalledProcessError) as error:
        sys.exit(f"resident_sections.py: {error}")


def resident(pid, binary):
    listed = sections(binary)
    name = binary.rsplit("/", 1)[-1]
    mappings = []
    with open(f"/proc/{pid}/maps") as maps:
        for line in maps:
            parts = line.split()
            if len(parts) >= 6 and parts[5].rsplit("/", 1)[-1] == name:
                low, high = (int(x, 16) for x in parts[0].split("-"))
                mappings.append((low, high, int(parts[2], 16)))
    if not mappings:
        sys.exit(f"process {pid} maps no file named {name}")
    # A position-independent binary's first segment maps file offset 0 at link address 0.
    bias = min(low - offset for low, _, offset in mappings)
    resident = Counter()
    with open(f"/proc/{pid}/pagemap", "rb") as pagemap:
        for low, high, _ in mappings:
            pagemap.seek(low // PAGE * 8)
            entries = pagemap.read((high - low) // PAGE * 8)
            for i in range((high - low) // PAGE):
                (entry,) = struct.unpack_from("<Q", entries, i * 8)
                if entry >> 63:  # present in memory
                    address = low + i * PAGE - bias
                    section = next((n for start, end, n in listed if start <= address < end), "(between sections)")
                    resident[section] += PAGE // 1024
    for section, kb in resident.most_common():
        print(f"{kb:8d} kB  {section}")
    print(f"{sum(resident.values()):8d} kB  in all")


if __name__ == "__main__":
    main()

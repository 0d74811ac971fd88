#!/usr/bin/env python3
"""docs/openapi.yaml -> the JSON the service embeds and serves at /openapi.json.

`make openapi` runs it; tests/contract.rs runs it too and fails when docs/openapi.json is
not the output for the committed YAML. Compact, keys in document order, UTF-8.
"""
import json
import sys

import yaml  # PyYAML (schemathesis depends on it; .ci/run installs both)

with open(sys.argv[1], encoding="utf-8") as f:
    document = yaml.safe_load(f)
json.dump(document, sys.stdout, ensure_ascii=False, separators=(",", ":"))
sys.stdout.write("\n")

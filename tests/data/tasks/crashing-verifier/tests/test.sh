#!/bin/bash
echo "verifier setup failed" >&2
exit 3

#!/usr/bin/env bash
# The end-to-end tests drive Hearth with the real AWS CLI (`aws` on PATH) and boto3. Use what the
# machine has; install Debian's packages when either is missing.
set -euo pipefail
need=()
command -v aws >/dev/null 2>&1 || need+=(awscli)
python3 -c 'import boto3' >/dev/null 2>&1 || need+=(python3-boto3)
[ ${#need[@]} -eq 0 ] && exit 0
exec "$(dirname "$0")/ensure-packages.sh" "${need[@]}"

#!/usr/bin/env bash
# The run script of ckpt's GitHub Action (action.yml), kept in a file so that
# it can be tested outside GitHub with the same environment variables:
#
#   CKPT                 the ckpt binary [ckpt on PATH]
#   CKPT_PATHS           what to scan: one path or glob per line (** matches
#                        any depth; a glob matching nothing is kept as is and
#                        reported missing)
#   CKPT_ARGS            extra flags for ckpt scan (split on spaces)
#   GITHUB_STEP_SUMMARY  the job summary file the Markdown report is appended to
#   GITHUB_OUTPUT        where the verdict output is written (optional)
#
# It runs ckpt scan --markdown over the paths, appends the report to the job
# summary, prints it to the log, and exits as ckpt does: 0 healthy, 1 findings,
# 2 something could not be scanned.
set -uo pipefail

ckpt=${CKPT:-ckpt}
shopt -s globstar # models/**/*.safetensors reaches every depth
paths=()
while IFS= read -r line || [ -n "$line" ]; do
  # trim, skip blank lines; expand globs without splitting on spaces
  line="${line#"${line%%[![:space:]]*}"}"
  line="${line%"${line##*[![:space:]]}"}"
  [ -n "$line" ] || continue
  saved_ifs=$IFS
  IFS=
  # shellcheck disable=SC2206 # the glob is meant to expand
  matches=( $line )
  IFS=$saved_ifs
  paths+=("${matches[@]}")
done <<< "${CKPT_PATHS:-}"
if [ ${#paths[@]} -eq 0 ]; then
  echo "::error::ckpt scan: no paths to scan (set the action's 'paths' input)"
  exit 2
fi
read -r -a extra <<< "${CKPT_ARGS:-}"

report=$(mktemp)
errors=$(mktemp)
trap 'rm -f "$report" "$errors"' EXIT
"$ckpt" scan --markdown --no-progress "${extra[@]}" -- "${paths[@]}" >"$report" 2>"$errors"
status=$?

summary=${GITHUB_STEP_SUMMARY:-/dev/null}
{
  echo "## ckpt scan"
  echo
  cat "$report"
  if [ -s "$errors" ]; then
    echo
    echo '```'
    cat "$errors"
    echo '```'
  fi
} >>"$summary"
cat "$report"
cat "$errors" >&2

case $status in
  0) verdict=healthy ;;
  1) verdict=unhealthy
     echo "::error::ckpt scan found problems in the checkpoints (the report is in the job summary)" ;;
  *) verdict=error
     echo "::error::ckpt scan could not scan every path: $(head -n 1 "$errors")" ;;
esac
if [ -n "${GITHUB_OUTPUT:-}" ]; then
  echo "verdict=$verdict" >>"$GITHUB_OUTPUT"
fi
exit $status

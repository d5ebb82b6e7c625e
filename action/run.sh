#!/usr/bin/env bash
# The step of the GitHub Action (action.yml). Inputs come as INPUT_* variables; GitHub provides GITHUB_ACTION_PATH,
# GITHUB_OUTPUT, GITHUB_PATH, GITHUB_STEP_SUMMARY and RUNNER_TEMP.
set -euo pipefail

command="${INPUT_COMMAND:-validate}"
case "$command" in
  validate | drift | plan | status | test-connection) ;;
  *) echo "::error title=astro-scim::unknown command '$command' (validate, drift, plan, status, test-connection)"
     exit 2 ;;
esac

# Install unless the runner already has astro-scim (a cached venv, an earlier step) and no version is asked for.
if [ -n "${INPUT_VERSION:-}" ] || ! command -v astro-scim > /dev/null; then
  venv="${RUNNER_TEMP:-/tmp}/astro-scim-venv"
  python3 -m venv "$venv"
  extras="all"
  [ "$command" = validate ] && extras=""  # offline: the core install, no IdP SDKs
  if [ -n "${INPUT_VERSION:-}" ]; then
    spec="astro-scim-connector${extras:+[$extras]}==${INPUT_VERSION}"
  else
    spec="${GITHUB_ACTION_PATH:?}${extras:+[$extras]}"
  fi
  "$venv/bin/pip" install --quiet --disable-pip-version-check "$spec"
  PATH="$venv/bin:$PATH"
  [ -n "${GITHUB_PATH:-}" ] && echo "$venv/bin" >> "$GITHUB_PATH"  # later steps can call astro-scim too
fi

config=(--config "${INPUT_CONFIG:-astro-scim.yaml}" --idp "${INPUT_IDP:-all}")
case "$command" in
  # --format github prints ::error/::warning annotations and, with GITHUB_STEP_SUMMARY set, appends the markdown
  # report to the job summary.
  validate) read -ra paths <<< "${INPUT_PATHS:-mappings/}"; args=(validate --format github "${paths[@]}") ;;
  drift) args=(drift --format github "${config[@]}") ;;
  plan) args=(plan --exit-code "${config[@]}") ;;
  *) args=("$command" "${config[@]}") ;;
esac

set +e
if [ "$command" = validate ] || [ "$command" = drift ]; then
  astro-scim "${args[@]}"
  code=$?
else  # text output: shown in the log and, fenced, in the job summary
  out="$(astro-scim "${args[@]}" 2>&1)"
  code=$?
  printf '%s\n' "$out"
  if [ -n "${GITHUB_STEP_SUMMARY:-}" ]; then
    printf '### astro-scim %s (exit %s)\n\n```\n%s\n```\n' "$command" "$code" "$out" >> "$GITHUB_STEP_SUMMARY"
  fi
fi
set -e

[ -n "${GITHUB_OUTPUT:-}" ] && echo "exit-code=$code" >> "$GITHUB_OUTPUT"
if [ "$code" = 1 ] && [ "${INPUT_FAIL_ON_FINDINGS:-true}" != "true" ]; then
  exit 0
fi
exit "$code"

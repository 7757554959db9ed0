#!/usr/bin/env bash
# The benchmark's one command: on a fresh Debian machine it installs what it needs (the
# project's .venv through scripts/setup, Postfix's package for smtp-source, smtp-sink and the
# peer MTA, the plot and profile tools), then runs benchmarks/run.py with these arguments.
# Run it as root: the peer Postfix's master runs as root, as it does in production.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup

SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
if ! command -v smtp-source >/dev/null && [ ! -x /usr/sbin/smtp-source ]; then
  # "No configuration": the package writes no main.cf, so no system Postfix is set up or
  # started; the benchmark runs its own throwaway instances (postfix -c DIR).
  echo "postfix postfix/main_mailer_type select No configuration" | $SUDO debconf-set-selections
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postfix
  # Only the Postfix we installed: never stop a mail server that was here before.
  $SUDO systemctl disable --now postfix.service >/dev/null 2>&1 || true
fi

stamp=.venv/.benchmarks-installed
if [ ! -f "$stamp" ] || [ benchmarks/requirements.txt -nt "$stamp" ]; then
  .venv/bin/python -m pip install -q -r benchmarks/requirements.txt
  touch "$stamp"
fi

exec .venv/bin/python benchmarks/run.py "$@"

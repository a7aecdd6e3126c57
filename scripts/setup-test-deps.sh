#!/usr/bin/env bash
# System packages the test suite needs (CI runs on a clean machine): tmux for servers,
# OpenSSH (client + server) for the tunnel tests. Idempotent; needs root or sudo.
set -euo pipefail
need=()
command -v tmux >/dev/null || need+=(tmux)
command -v ssh >/dev/null || need+=(openssh-client)
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  echo "installing: ${need[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
# the SLURM runtime's tests (tests/slurm) run a real munged + slurmctld + slurmd on localhost
slurm_need=()
{ command -v sbatch >/dev/null && [ -x /usr/sbin/slurmctld ] && [ -x /usr/sbin/slurmd ]; } || slurm_need+=(slurm-wlm)
[ -x /usr/sbin/munged ] || slurm_need+=(munge)
if [ ${#slurm_need[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  echo "installing: ${slurm_need[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${slurm_need[@]}" >/dev/null
fi

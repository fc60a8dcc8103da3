# shellcheck shell=bash
# Shared by scripts/install-test-deps and scripts/run (sourced, not run).
# Besides packages, the account nginx's workers run as (below).
#
# Installing Debian packages the way Portico's scripts do: ask first (unless
# CI is set, PORTICO_INSTALL=yes, or the caller was given --yes); use sudo
# only when not root, and say so clearly when sudo is missing; and keep the
# packages' services from starting with a temporary policy-rc.d that denies
# every start. A policy-rc.d that was already there is left alone. Nothing
# here stops or kills a process.

# portico_sudo PROG: prints the command prefix that runs a command as root:
# nothing as root, "sudo" otherwise. Fails, naming PROG, when not root and
# sudo is missing.
portico_sudo() {
  if [ "$(id -u)" -eq 0 ]; then
    return 0
  fi
  if ! command -v sudo >/dev/null 2>&1; then
    echo "$1: installing packages needs root, and sudo is not installed: run this as root (for example: su -c '$0 ...'), or install sudo" >&2
    return 1
  fi
  echo sudo
}

# portico_may_install PROG YES HOW PKG...: succeeds when PROG may install
# PKG... now: CI or PORTICO_INSTALL=yes is set, YES is 1, or the person at
# the terminal says so. Without a terminal it prints HOW (how to go on) and
# fails.
portico_may_install() {
  local prog=$1 yes=$2 how=$3
  shift 3
  _portico_may "$prog" "$yes" "not installing $* without asking; $how" \
    "Install $* with apt-get now (their services are not started)?" "not installed"
}

# _portico_may PROG YES REFUSAL QUESTION NO: succeeds when CI or
# PORTICO_INSTALL=yes is set, YES is 1, or the person at the terminal
# answers QUESTION with yes. Without a terminal it prints REFUSAL and fails.
_portico_may() {
  local prog=$1 yes=$2 refusal=$3 question=$4 no=$5 answer
  if [ -n "${CI:-}" ] || [ "${PORTICO_INSTALL:-}" = yes ] || [ "$yes" = 1 ]; then
    return 0
  fi
  if ! [ -t 0 ]; then
    echo "$prog: $refusal" >&2
    return 1
  fi
  read -r -p "$question [y/N] " answer
  case "$answer" in
  y | Y | yes) return 0 ;;
  *)
    echo "$prog: $no" >&2
    return 1
    ;;
  esac
}

# PORTICO_NGINX_USER_DEFAULT is portico's --nginx-user default.
PORTICO_NGINX_USER_DEFAULT=portico-nginx

# portico_nginx_account PROG YES NAME: makes sure the account NAME, which a
# root portico's nginx workers run as (docs/security.md), exists: it creates
# it (a system account with a group of its own, no home, no shell) after
# asking, as portico_may_install does. Root only: call it as root.
portico_nginx_account() {
  local prog=$1 yes=$2 name=$3
  if getent passwd "$name" >/dev/null 2>&1; then
    return 0
  fi
  local cmd=(useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin
    --comment "Portico's nginx workers" "$name")
  echo "$prog: nginx's workers run as $name, an account nothing else uses (docs/security.md); it does not exist yet"
  _portico_may "$prog" "$yes" "not creating the account $name without asking; run with --yes (or CI=1), or create it yourself: ${cmd[*]}" \
    "Create the system account $name now (${cmd[*]})?" "not created; portico run refuses to start nginx without it" || return 1
  # useradd is in /usr/sbin, which is not on every root's PATH.
  PATH=$PATH:/usr/sbin:/sbin "${cmd[@]}"
  getent passwd "$name" >/dev/null 2>&1 || { echo "$prog: ${cmd[*]} did not create $name" >&2; return 1; }
}

# portico_apt_install PROG PKG...: installs PKG... with apt-get while a
# temporary policy-rc.d (PORTICO_POLICY_RC_D, default /usr/sbin/policy-rc.d)
# denies every service start, then removes that policy-rc.d again (also when
# the install fails). Call portico_may_install first.
portico_apt_install() {
  local prog=$1 sudo policy=${PORTICO_POLICY_RC_D:-/usr/sbin/policy-rc.d}
  shift
  sudo=$(portico_sudo "$prog") || return 1
  _portico_policy_ours=
  if ! [ -e "$policy" ]; then
    # 101: "action forbidden by policy" (invoke-rc.d); no service starts.
    printf '#!/bin/sh\n# Written by Portico'"'"'s %s for the length of one install.\nexit 101\n' "$prog" |
      $sudo tee "$policy" >/dev/null
    $sudo chmod 0755 "$policy"
    _portico_policy_ours=$policy
  fi
  _portico_policy_sudo=$sudo
  trap _portico_policy_cleanup EXIT
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@" >/dev/null
  _portico_policy_cleanup
  trap - EXIT
}

_portico_policy_cleanup() {
  if [ -n "${_portico_policy_ours:-}" ]; then
    $_portico_policy_sudo rm -f "$_portico_policy_ours"
    _portico_policy_ours=
  fi
}

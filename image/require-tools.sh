#!/bin/sh
# Make sure system tools exist: `require-tools.sh COMMAND:DEBIAN-PACKAGE ...`.
# Missing ones are installed with apt-get when we are root on Debian; otherwise we name the packages and fail,
# so a fresh machine either sets itself up or says exactly what it lacks.
set -eu
missing_cmds=""
missing_pkgs=""
for pair in "$@"; do
    cmd=${pair%%:*}
    pkg=${pair#*:}
    if [ "${cmd#/}" != "$cmd" ]; then present=$([ -e "$cmd" ] && echo y || true)
    else present=$(command -v "$cmd" >/dev/null 2>&1 && echo y || true); fi
    if [ -z "$present" ]; then
        missing_cmds="$missing_cmds $cmd"
        case " $missing_pkgs " in *" $pkg "*) ;; *) missing_pkgs="$missing_pkgs $pkg" ;; esac
    fi
done
[ -z "$missing_pkgs" ] && exit 0
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing system packages:$missing_pkgs (for$missing_cmds)"
    export DEBIAN_FRONTEND=noninteractive
    if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends $missing_pkgs >/dev/null; }; then
        echo "error: apt-get could not install$missing_pkgs (is the Debian mirror reachable?)" >&2
        exit 1
    fi
    exit 0
fi
echo "error: missing$missing_cmds; install the Debian packages:$missing_pkgs (apt-get install$missing_pkgs, as root)" >&2
exit 1

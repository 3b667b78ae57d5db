#!/bin/sh
# abing's package: before its files go (dpkg: remove, upgrade; rpm: 0 on
# removal, 1 on upgrade). On removal the services stop.
set -e
case "$1" in
remove | 0)
	if [ -d /run/systemd/system ]; then
		systemctl disable --now abing-reflector.service abing-monitor.service abing-mesh-agent.service >/dev/null 2>&1 || true
	fi
	;;
esac

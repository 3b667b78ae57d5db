#!/bin/sh
# abing's package: after its files went (dpkg: remove, purge, upgrade;
# rpm: 0 on removal, 1 on upgrade). dpkg's purge also removes the
# measurements in /var/lib/abing; the abing user and group stay (files
# elsewhere may still be theirs, and a later install takes them again).
set -e
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload || true
fi
if [ "$1" = purge ]; then
	rm -rf /var/lib/abing
	rmdir /etc/abing 2>/dev/null || true
fi

#!/bin/sh
# abing's package: after the files are in place (dpkg: configure; rpm:
# install or upgrade). Idempotent.
set -e
if ! getent group abing >/dev/null; then
	groupadd --system abing
fi
if ! getent passwd abing >/dev/null; then
	useradd --system --gid abing --home-dir /var/lib/abing --no-create-home \
		--shell /usr/sbin/nologin --comment "abing measurements" abing
fi
install -d -o abing -g abing -m 0750 /var/lib/abing
# The reflector needs CAP_NET_BIND_SERVICE for STAMP's port 862 and
# CAP_NET_ADMIN for hardware timestamps, only while it sets its sockets up
# (it then gives up every capability on every thread). Only root and the
# abing group may run it with them: a binary any user could run would let
# anyone take a privileged port or change a NIC's timestamping.
chown root:abing /usr/bin/abing-reflector
chmod 0750 /usr/bin/abing-reflector
setcap cap_net_admin,cap_net_bind_service=ep /usr/bin/abing-reflector
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload || true
fi
cat <<'MSG'
abing: installed, no service enabled. The reflector answers probes on UDP 8176:
  systemctl enable --now abing-reflector     (flags: /etc/abing/reflector.env)
The monitor and the mesh agent need a configuration first
(/usr/share/doc/abing/examples/): write /etc/abing/monitor.yaml, then
  systemctl enable --now abing-monitor
MSG

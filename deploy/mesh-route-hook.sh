#!/bin/sh
# abing mesh agent: a route hook for an overlay (docs/mesh.md, "Routes").
# The agent runs it for every alarm and every route event; a route event
# has ABING_ALARM_KIND=route and says, in ABING_ALARM_LABEL_* variables,
# where the route to a member now goes on one path network. This one only
# prints the ip route lines it would run: read them, then replace echo by
# the command (the agent's user needs CAP_NET_ADMIN for that).
# In the agent's configuration (one command a configuration):
#   alarms:
#     command: [/usr/local/bin/abing-mesh-route-hook]
[ "$ABING_ALARM_KIND" = route ] || exit 0
dst=$ABING_ALARM_LABEL_DESTINATION_ADDR
via=$ABING_ALARM_LABEL_NEW_NEXT_HOP_ADDR
[ -n "$dst" ] || exit 0 # the member has no address on that path
if [ "$ABING_ALARM_LABEL_NEW_ROUTE" = unreachable ]; then
	echo ip route del "$dst"
elif [ "$ABING_ALARM_LABEL_NEW_NEXT_HOP" = "$ABING_ALARM_TARGET" ]; then
	echo ip route replace "$dst" via "$dst" # direct again
else
	echo ip route replace "$dst" via "$via"
fi

#!/usr/bin/env bash
# Plays one whole game of Hokm against a running hoard with curl and jq:
# four players, each plays the first legal card of their own hand.
#   scripts/run-offline.sh &        # in another terminal
#   examples/hokm-curl.sh [SEED]    # a SEED needs sessions.client_seeds = true
set -euo pipefail
H=${HOARD:-http://127.0.0.1:7878}
BODY='{}'
if [ $# -gt 0 ]; then BODY="{\"seed\": $1}"; fi

S=$(curl -sf -XPOST "$H/v1/games/hokm/sessions" -d "$BODY" | jq -r .session)
echo "session $S"
declare -a TOKENS
for seat in 0 1 2 3; do
    name=$(echo north west south east | cut -d' ' -f$((seat + 1)))
    TOKENS[$seat]=$(curl -sf -XPOST "$H/v1/sessions/$S/join" -d "{\"name\": \"$name\"}" | jq -r .token)
done

actions=0
while :; do
    view=$(curl -sf "$H/v1/sessions/$S" | jq .view)
    phase=$(jq -r .phase <<<"$view")
    [ "$phase" = finished ] && break
    turn=$(jq -r .turn <<<"$view")
    token=${TOKENS[$turn]}
    mine=$(curl -sf "$H/v1/sessions/$S/view" -H "Authorization: Bearer $token" | jq .view)
    if [ "$phase" = choosing_trump ]; then
        # Name the suit of the first of the five cards the Hakem holds.
        suit=$(jq -r '.you.hand[0][-1:]' <<<"$mine")
        action="{\"type\": \"trump\", \"suit\": \"$suit\"}"
    else
        # Follow the suit led if possible, else play the first card.
        card=$(jq -r '(.trick[0].card // "")[-1:] as $led
                      | ([.you.hand[] | select($led != "" and endswith($led))] + .you.hand)[0]' <<<"$mine")
        action="{\"type\": \"play\", \"card\": \"$card\"}"
    fi
    curl -sf -XPOST "$H/v1/sessions/$S/actions" -H "Authorization: Bearer $token" -d "$action" >/dev/null
    actions=$((actions + 1))
done
curl -sf "$H/v1/sessions/$S" | jq '{actions, outcome, fairness}'

#!/bin/sh
# image-test.sh IMAGE: runs the image as `docker run --network host IMAGE` would (the demo),
# on a spare port, and checks that it serves. Used by `make image-test`.
set -eu
image=${1:-switchboard}
port=${PORT:-18080}
name=switchboard-image-test-$$
docker run -d --rm --name "$name" --network host -e SWITCHBOARD_ADDR=127.0.0.1:$port "$image" >/dev/null
passed=no
trap '[ $passed = yes ] || docker logs "$name" 2>&1 | tail -20; docker stop "$name" >/dev/null 2>&1 || true' EXIT
for i in $(seq 1 50); do
	if curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; then break; fi
	[ "$i" = 50 ] && { echo "image-test: /healthz did not answer within 10 s"; exit 1; }
	sleep 0.2
done
curl -fsS "http://127.0.0.1:$port/healthz"
curl -fsS -o /dev/null "http://127.0.0.1:$port/readyz"
curl -fsS "http://127.0.0.1:$port/" | grep -q 'href="/agent"'
curl -fsS -I "http://127.0.0.1:$port/healthz" | head -1
[ "$(docker inspect -f '{{.Config.User}}' "$image")" = 65532:65532 ] || { echo "image-test: the image does not run as the switchboard user"; exit 1; }
passed=yes
echo "image-test: $image serves /healthz, /readyz and the landing page, as a non-root user"

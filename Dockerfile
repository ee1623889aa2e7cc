# The Switchboard image, built by `make image` with NO registry access: the static binary is
# built by the local Go toolchain (CGO_ENABLED=0), and the build context (build/image, made by
# make) holds only it, the build machine's CA certificates and a passwd line for a non-root
# user. FROM scratch needs no pull. With a registry, Dockerfile.multistage builds the same
# image from the source alone.
FROM scratch
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY passwd /etc/passwd
COPY switchboard /switchboard
# Numeric, so Kubernetes can verify runAsNonRoot; the passwd line gives it a name.
USER 65532:65532
# HTTP (behind a TLS proxy in production) and the agents' audio (SWITCHBOARD_WEBRTC_UDP_PORT).
EXPOSE 8080 8443/udp
ENTRYPOINT ["/switchboard"]

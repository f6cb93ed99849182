# images/engine.sh: which container engine images/build and images/containers drive, and the
# names that differ between engines. Sourced, not run.
#
#   MUSTER_ENGINE   podman or docker; default podman when it is installed, else docker
#
# Sets ENGINE (the command), engine (a function running it), LOCAL_DEBIAN (the name of a
# base image made here) and BASE_REPOSITORY (how a role's FROM names the local muster/base).
# podman gets images/containers.conf as CONTAINERS_CONF unless one is set already.

engine_name=${MUSTER_ENGINE:-}
if [[ -z $engine_name ]]; then
  if command -v podman >/dev/null; then engine_name=podman
  elif command -v docker >/dev/null; then engine_name=docker
  else
    printf 'error: neither podman nor docker is installed (scripts/install-deps installs podman)\n' >&2
    exit 1
  fi
fi
case $engine_name in
  podman)
    export CONTAINERS_CONF=${CONTAINERS_CONF:-$REPO/images/containers.conf}
    # podman keeps images built here under localhost/; a role's FROM names that exactly, so
    # that no registry is asked for a short name.
    BASE_REPOSITORY=localhost/muster/base
    ;;
  docker)
    BASE_REPOSITORY=muster/base
    # The legacy builder (the default before Docker 23) builds every stage of a Dockerfile,
    # the unused one for the binaries too; BuildKit, like podman, builds only what is needed.
    export DOCKER_BUILDKIT=1
    ;;
  *)
    printf 'error: MUSTER_ENGINE must be podman or docker, got %s\n' "$engine_name" >&2
    exit 1
    ;;
esac
command -v "$engine_name" >/dev/null || { printf 'error: MUSTER_ENGINE=%s is not installed\n' "$engine_name" >&2; exit 1; }
ENGINE=("$engine_name")
LOCAL_DEBIAN=localhost/debian:bookworm-slim
# Without descriptor 9: the callers' lock, which conmon (podman's monitor of each container,
# a long-lived process) would otherwise inherit and hold after the caller exits.
engine() { "${ENGINE[@]}" "$@" 9>&-; }

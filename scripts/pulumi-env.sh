# shellcheck shell=bash disable=SC2034
# Sourced by scripts/up, scripts/down and scripts/install-pulumi, and by you (`source scripts/pulumi-env.sh`):
# the pulumi CLI they use and the environment they give it. bash 3.2 (macOS) and POSIX tools only.

# The one pin of the CLI, for both routes of scripts/install-pulumi: Pulumi's installer and the build from Go
# modules (tools/pulumi-cli/go.mod requires pkg/v3 and sdk/v3 at this version). 3.272.0, the Python SDK's
# version, is not served by the Go module proxy; 3.274.0 is the nearest release that is.
PULUMI_VERSION=3.274.0
PULUMI_ROOT=$PWD/.tools/pulumi  # where: a folder of the project, never the user's PATH or shell profile
STACK=${STACK:-dev}

# The project's CLI comes first: scripts/install-pulumi puts it in .tools/pulumi/bin.
PATH=$PULUMI_ROOT/bin:$PATH

# A local state folder and, unless given, a development passphrase: secrets only through the environment.
pulumi_env() {
  if [[ -z ${PULUMI_BACKEND_URL:-} ]]; then
    mkdir -p .pulumi-state
    export PULUMI_BACKEND_URL="file://$PWD/.pulumi-state"
  fi
  if [[ -z ${PULUMI_CONFIG_PASSPHRASE+x} && -z ${PULUMI_CONFIG_PASSPHRASE_FILE:-} ]]; then
    echo "scripts/$(basename "$0"): PULUMI_CONFIG_PASSPHRASE is not set; using a development passphrase for the local stack" >&2
    export PULUMI_CONFIG_PASSPHRASE=dev-only-passphrase
  fi
  export PULUMI_SKIP_UPDATE_CHECK=true
}

# Installs the Debian packages the tests, the demo or the benchmark need, when missing.
# Usage: . tests/deps.sh; install_deps test|demo|bench
install_deps() {
    local pkgs=(btrfs-progs busybox-static util-linux iproute2 strace binutils python3)
    case "$1" in
        test) pkgs+=(libbtrfsutil-dev clang libclang-dev pkg-config nftables util-linux-extra gcc libc6-dev time skopeo) ;;
        bench) pkgs+=(hyperfine crun runc bubblewrap time) ;;
    esac
    local missing=()
    for p in "${pkgs[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        echo "installing: ${missing[*]}" >&2
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
    if ! command -v cargo >/dev/null; then
        echo "cargo is missing: install a Rust toolchain (https://rustup.rs)" >&2
        return 1
    fi
}

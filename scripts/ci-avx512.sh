#!/usr/bin/env bash
# AVX-512 check. No machine of ours (nor CI's) has AVX-512, and QEMU's TCG cannot run
# it, so this boots Debian's Linux kernel in Bochs, which emulates an AVX-512 CPU
# (model corei7_skylake_x), from a CD image whose initramfs holds the kernels crate's
# test binaries from the README's `cargo test --release --workspace` (with the host's
# dynamic loader and libraries): the unit tests and the proptests (every kernel
# against the scalar reference) on AVX-512 only, and kernels/tests/isa_check.rs for
# AVX-512 (every algorithm, pools, classifier, the whole network at 64x64).
# scripts/avx512-vm/init.c runs them and powers off; this script reads the VM's serial
# console and fails unless every program passed with AVX-512 enabled.
#
# Usage: ci-avx512.sh [prepare|image|boot|all]   (default all)
#   prepare  install the packages and unpack Debian's kernel (apt)
#   image    build the tests (cargo test --release --workspace --no-run, shared with
#            the README's test command) and write the CD image
#   boot     run the VM and check its console (about ten minutes beside the rest of CI)
#   .ci/run runs prepare and image in the foreground, then boot in the background.
#
# Environment:
#   CI_AVX512_SKIP_INSTALL=1  never call apt-get (fail if a tool or the kernel is missing)
#   CI_AVX512_TIMEOUT=S       limit for the Bochs run (default 2400 s)
#   CI_AVX512_CPU=MODEL       Bochs CPU model (default corei7_skylake_x; also tigerlake)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never

WORK=target/avx512-vm
CPU_MODEL=${CI_AVX512_CPU:-corei7_skylake_x}
MODE=${1:-all}
case "$MODE" in
prepare | image | boot | all) ;;
*)
    echo "usage: $0 [prepare|image|boot|all]" >&2
    exit 2
    ;;
esac
mkdir -p "$WORK"
[ "$MODE" = image ] || [ "$MODE" = boot ] && export CI_AVX512_SKIP_INSTALL=1

need_install() {
    command -v bochs >/dev/null && command -v genisoimage >/dev/null &&
        [ -f /usr/lib/ISOLINUX/isolinux.bin ] && [ -f /usr/lib/syslinux/modules/bios/ldlinux.c32 ] &&
        [ -f /usr/share/bochs/BIOS-bochs-latest ] && [ -f /usr/share/vgabios/vgabios.bin ] && return 1
    return 0
}

SUDO=
[ "$(id -u)" = 0 ] || SUDO=sudo
updated=0
if need_install; then
    if [ "${CI_AVX512_SKIP_INSTALL:-0}" = 1 ]; then
        echo "ci-avx512: bochs/isolinux/genisoimage missing (CI_AVX512_SKIP_INSTALL=1, or mode $MODE)" >&2
        exit 1
    fi
    echo "== installing Bochs, isolinux, genisoimage"
    $SUDO apt-get update -q
    updated=1
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends \
        bochs bochsbios vgabios isolinux syslinux-common genisoimage
fi

# Debian's current kernel image, unpacked (not installed).
KERNEL=$(ls "$WORK"/kernel/boot/vmlinuz-* 2>/dev/null | head -1 || true)
if [ -z "$KERNEL" ]; then
    if [ "${CI_AVX512_SKIP_INSTALL:-0}" = 1 ]; then
        echo "ci-avx512: no kernel under $WORK/kernel (CI_AVX512_SKIP_INSTALL=1, or mode $MODE)" >&2
        exit 1
    fi
    [ "$updated" = 1 ] || $SUDO apt-get update -q
    pkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
    [ -n "$pkg" ] || { echo "ci-avx512: no linux-image package behind linux-image-amd64" >&2; exit 1; }
    echo "== downloading $pkg"
    rm -rf "$WORK/deb" && mkdir -p "$WORK/deb" "$WORK/kernel"
    # apt-get download writes to the current directory; as root it warns that _apt cannot write there.
    dl_rc=0
    (cd "$WORK/deb" && apt-get download "$pkg") >"$WORK/deb/apt.log" 2>&1 || dl_rc=$?
    grep -v "unsandboxed" "$WORK/deb/apt.log" || true
    deb=$(ls "$WORK"/deb/"$pkg"_*.deb 2>/dev/null | head -1 || true)
    if [ "$dl_rc" != 0 ] || [ -z "$deb" ]; then
        echo "ci-avx512: apt-get download $pkg failed (exit $dl_rc, no .deb in $WORK/deb)" >&2
        exit 1
    fi
    dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$WORK/kernel" --wildcards './boot/vmlinuz-*'
    rm -rf "$WORK/deb"
    KERNEL=$(ls "$WORK"/kernel/boot/vmlinuz-* | head -1)
fi
if [ "$MODE" = prepare ]; then
    echo "== ci-avx512 prepared: $(command -v bochs), $KERNEL"
    exit 0
fi

start=$(date +%s)
ROOT=$WORK/root # the initramfs's files: /tests (one per program the VM runs), /args, libraries
if [ "$MODE" != boot ]; then
    echo "== build: the workspace's tests (release), for the kernels crate's binaries"
    cargo test --locked --release --workspace --no-run --message-format=json >"$WORK/build.json"
    mapfile -t TESTS < <(python3 -c '
import json, sys
for line in open(sys.argv[1]):
    m = json.loads(line)
    if (m.get("reason") == "compiler-artifact" and m.get("manifest_path", "").endswith("/kernels/Cargo.toml")
            and m.get("profile", {}).get("test") and m.get("executable")):
        print(m["executable"])
' "$WORK/build.json")
    [ "${#TESTS[@]}" -ge 4 ] || { echo "ci-avx512: expected the kernels crate's test binaries, got: ${TESTS[*]}" >&2; exit 1; }
    rm -rf "$WORK/iso" "$ROOT" && mkdir -p "$WORK/iso" "$ROOT/tests" "$ROOT/args"
    for t in "${TESTS[@]}"; do
        # Name them by target (cargo appends a hash), stripped: the initramfs stays small.
        name=$(basename "$t" | sed 's/-[0-9a-f]*$//')
        [ "$name" = resnet50_kernels ] && name=lib_unit_tests
        strip -o "$ROOT/tests/$name" "$t"
    done
    ls "$ROOT/tests"
    # The binaries are dynamic (like every `cargo test` build): the VM gets the host's
    # loader and the libraries they link (libc, libgcc_s, libm), at the same paths.
    mapfile -t LIBS < <(ldd "${TESTS[@]}" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// && $2 ~ /^\(/ { print $1 }' | sort -u)
    [ "${#LIBS[@]}" -ge 2 ] || { echo "ci-avx512: ldd found no loader/libc for the tests: ${LIBS[*]}" >&2; exit 1; }
    for lib in "${LIBS[@]}"; do
        mkdir -p "$ROOT$(dirname "$lib")"
        cp -L "$lib" "$ROOT$lib"
    done
    echo "libraries: ${LIBS[*]}"
    # Arguments per program (one per line), skipping three tests that would take most
    # of the VM's time for nothing the VM adds: resnet50_layer_accuracy runs four
    # full-size ResNet50 3x3 layers in f64 and on the scalar reference (about a
    # billion emulated multiply-adds; it measures accuracy, which AVX2 shows natively,
    # and the proptests check AVX-512 against the reference here);
    # avx512_body_emulated_matches_reference runs the AVX-512 microkernel on scalar
    # lanes, for machines without AVX-512 (here the real one runs); and
    # row_chunks_through_the_k_reduction_match_reference checks how the loop nest cuts
    # C into chunks for several K blocks (ISA-neutral code, run natively with every
    # ISA the host has; its shapes must exceed 512 KiB of C: ~0.8 G multiply-adds and
    # as many for the reference, 300 s of the VM), while the VM's other GEMM tests
    # cover the AVX-512 kernel's K blocks that accumulate into C.
    printf '%s\n' --skip resnet50_layer_accuracy >"$ROOT/args/winograd_props"
    printf '%s\n' --skip row_chunks_through_the_k_reduction_match_reference >"$ROOT/args/gemm_props"
    printf '%s\n' --skip avx512_body_emulated_matches_reference >"$ROOT/args/lib_unit_tests"
    gcc -static -O2 -Wall -Wextra -Werror -o "$WORK/init" scripts/avx512-vm/init.c
    python3 scripts/avx512-vm/initramfs.py "$WORK/iso/initrd.cpio" "$WORK/init" "$ROOT"

    echo "== CD image: isolinux, $(basename "$KERNEL"), initramfs"
    cp "$KERNEL" "$WORK/iso/vmlinuz"
    cp /usr/lib/ISOLINUX/isolinux.bin /usr/lib/syslinux/modules/bios/ldlinux.c32 "$WORK/iso/"
    # clearcpuid=xsaves,xsavec: Bochs 2.7 reports the standard-format XSAVE size where
    # Linux expects the compacted one; Linux then refuses XSAVE (and with it AVX and
    # AVX-512) unless it uses the standard format. Unknown key=value parameters reach
    # init's environment: RESNET50_TEST_ISAS=avx512 makes
    # isa_check and the other tests check AVX-512 only (scalar and AVX2 are checked natively;
    # emulated, they took most of the VM's time).
    cat >"$WORK/iso/isolinux.cfg" <<CFG
DEFAULT check
PROMPT 0
TIMEOUT 0
LABEL check
  KERNEL /vmlinuz
  APPEND initrd=/initrd.cpio console=ttyS0,115200 panic=-1 clearcpuid=xsaves,xsavec cryptomgr.notests mitigations=off RESNET50_TEST_ISAS=avx512
CFG
    genisoimage -quiet -o "$WORK/check.iso" -b isolinux.bin -c boot.cat -no-emul-boot -boot-load-size 4 \
        -boot-info-table -R "$WORK/iso"

    # Bochs: no display (the rfb GUI without waiting for a client), no sound, the
    # serial console into a file. This Debian build has the debugger compiled in:
    # "continue" comes from an rc file.
    cat >"$WORK/bochsrc" <<RC
megs: 1024
cpu: model=$CPU_MODEL, count=1, ips=200000000
romimage: file=/usr/share/bochs/BIOS-bochs-latest
vgaromimage: file=/usr/share/vgabios/vgabios.bin
ata0-master: type=cdrom, path=$WORK/check.iso, status=inserted
boot: cdrom
com1: enabled=1, mode=file, dev=$WORK/serial.txt
display_library: rfb, options="timeout=0"
speaker: enabled=0
sound: waveoutdrv=dummy, waveindrv=dummy, midioutdrv=dummy
log: $WORK/bochs.log
panic: action=fatal
RC
    echo continue >"$WORK/bochs.rc"
    echo "== image written: $WORK/check.iso ($(($(date +%s) - start)) s)"
fi
[ "$MODE" = image ] && exit 0
[ -f "$WORK/check.iso" ] && [ -d "$ROOT/tests" ] ||
    { echo "ci-avx512: no CD image under $WORK (run: $0 image)" >&2; exit 1; }
rm -f "$WORK/serial.txt" "$WORK/console.txt"
echo "== boot in Bochs ($CPU_MODEL)"
echo "   (the VM's console below, without the kernel's messages; [s] = seconds since boot)"
boot=$(date +%s)
shown=0
# Prints the console lines not yet shown (the serial console ends lines with \r\n).
show_console() {
    [ -f "$WORK/serial.txt" ] || return 0 # Bochs creates it at the first byte
    tr -d '\r' <"$WORK/serial.txt" >"$WORK/console.txt" || return 0
    local lines
    lines=$(wc -l <"$WORK/console.txt")
    if [ "$lines" -gt "$shown" ]; then
        tail -n +"$((shown + 1))" "$WORK/console.txt" | head -n "$((lines - shown))" |
            grep -v '^\[' | sed "s/^/[$(($(date +%s) - boot))] /" || true
        shown=$lines
    fi
}
timeout "${CI_AVX512_TIMEOUT:-2400}" bochs -q -f "$WORK/bochsrc" -rc "$WORK/bochs.rc" \
    >"$WORK/bochs.out" 2>&1 </dev/null &
bochs_pid=$!
while kill -0 "$bochs_pid" 2>/dev/null; do
    sleep 5
    show_console
done
wait "$bochs_pid" || true
show_console
echo "== Bochs ended after $(($(date +%s) - boot)) s"

fail() {
    echo "ci-avx512: $*" >&2
    echo "-- last lines of the serial console and of bochs.log:" >&2
    tail -n 20 "$WORK/console.txt" >&2 || true
    tail -n 20 "$WORK/bochs.log" >&2 || true
    exit 1
}
grep -q '^init: cpu flags: avx2 1 fma 1 avx512f 1$' "$WORK/console.txt" ||
    fail "Linux did not enable AVX-512 in the VM"
grep -q '^isa_check on x86_64 (host ISAs): ISAs \["avx512"\]' "$WORK/console.txt" ||
    fail "isa_check did not check AVX-512"
summary=$(grep '^init: done: ' "$WORK/console.txt" || true)
[ -n "$summary" ] || fail "the VM did not finish (timeout or crash)"
expected=$(find "$ROOT/tests" -maxdepth 1 -type f | wc -l)
[ "$summary" = "init: done: $expected programs, 0 failed" ] || fail "$summary (expected $expected programs, 0 failed)"
echo "== ci-avx512 done ($(($(date +%s) - start)) s): $summary"

//! Instruction-set selection: detected once at run time, overridable for tests
//! and benchmarks (`RESNET50_ISA=scalar|avx2|avx512|neon`).

use std::fmt;
use std::str::FromStr;

/// A family of kernels, by the instructions it needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Isa {
    /// Portable Rust; runs everywhere.
    Scalar,
    /// x86-64 AVX2 + FMA (256-bit).
    Avx2,
    /// x86-64 AVX-512F (512-bit).
    Avx512,
    /// aarch64 Advanced SIMD (128-bit).
    Neon,
}

impl Isa {
    /// Every ISA, fastest last.
    pub const ALL: [Isa; 4] = [Isa::Scalar, Isa::Neon, Isa::Avx2, Isa::Avx512];

    /// The name used by `RESNET50_ISA`, the CLI and benchmark output.
    pub fn name(self) -> &'static str {
        match self {
            Isa::Scalar => "scalar",
            Isa::Avx2 => "avx2",
            Isa::Avx512 => "avx512",
            Isa::Neon => "neon",
        }
    }

    /// Whether this CPU can run the kernels of this ISA.
    pub fn is_supported(self) -> bool {
        match self {
            Isa::Scalar => true,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => {
                is_x86_feature_detected!("avx512f")
                    && is_x86_feature_detected!("avx2")
                    && is_x86_feature_detected!("fma")
            }
            #[cfg(target_arch = "aarch64")]
            Isa::Neon => std::arch::is_aarch64_feature_detected!("neon"),
            #[allow(unreachable_patterns)]
            _ => false,
        }
    }

    /// Every ISA this CPU supports (always includes `Scalar`).
    pub fn supported() -> Vec<Isa> {
        Isa::ALL.into_iter().filter(|i| i.is_supported()).collect()
    }

    /// The ISAs the tests compare against the scalar reference: every
    /// supported one, or only those named in `RESNET50_TEST_ISAS` (comma
    /// separated). The AVX-512 virtual machine (`scripts/ci-avx512.sh`)
    /// checks only `avx512` there: scalar and AVX2 are checked natively, and
    /// emulated they would take most of its time.
    ///
    /// # Panics
    /// If `RESNET50_TEST_ISAS` names an unknown or unsupported ISA (a test
    /// setting: a typo must not pass by checking nothing).
    #[doc(hidden)]
    pub fn under_test() -> Vec<Isa> {
        match std::env::var("RESNET50_TEST_ISAS") {
            Ok(v) if !v.trim().is_empty() => v
                .split(',')
                .map(|name| Isa::checked(name.trim()).unwrap_or_else(|e| panic!("RESNET50_TEST_ISAS: {e}")))
                .collect(),
            _ => Isa::supported(),
        }
    }

    /// The widest ISA this CPU supports: AVX-512F, then AVX2+FMA, NEON,
    /// scalar. On a Zen 4 (2026-12-01) the AVX-512 GEMM ran at 86–97 % of
    /// the FMA peak on ResNet50's 1×1 layers against 77–94 % for AVX2, and
    /// the whole network 4 % faster (`RESNET50_ISA=avx2` to compare). Most
    /// machines CI runs on have no AVX-512: there its kernels are checked in
    /// an emulated Skylake-X (`scripts/ci-avx512.sh`).
    pub fn best() -> Isa {
        Isa::ALL.into_iter().rev().find(|i| i.is_supported()).unwrap_or(Isa::Scalar)
    }

    /// `RESNET50_ISA` if set (an error if it names an unknown or unsupported
    /// ISA), else [`Isa::best`].
    pub fn from_env() -> Result<Isa, IsaError> {
        match std::env::var("RESNET50_ISA") {
            Ok(v) if !v.trim().is_empty() => Isa::checked(&v),
            _ => Ok(Isa::best()),
        }
    }

    /// Parses `name` and checks that this CPU supports it.
    pub fn checked(name: &str) -> Result<Isa, IsaError> {
        let isa: Isa = name.parse()?;
        if isa.is_supported() {
            Ok(isa)
        } else {
            Err(IsaError::Unsupported(isa))
        }
    }
}

impl fmt::Display for Isa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why an ISA name was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IsaError {
    /// Not one of `scalar`, `avx2`, `avx512`, `neon`.
    Unknown(String),
    /// Known, but this CPU cannot run it.
    Unsupported(Isa),
}

impl fmt::Display for IsaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IsaError::Unknown(s) => write!(f, "unknown ISA {s:?}: expected scalar, avx2, avx512 or neon"),
            IsaError::Unsupported(i) => write!(
                f,
                "ISA {i} is not supported by this CPU (supported: {})",
                Isa::supported().iter().map(|i| i.name()).collect::<Vec<_>>().join(", ")
            ),
        }
    }
}
impl std::error::Error for IsaError {}

impl FromStr for Isa {
    type Err = IsaError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "scalar" => Ok(Isa::Scalar),
            "avx2" => Ok(Isa::Avx2),
            "avx512" | "avx512f" => Ok(Isa::Avx512),
            "neon" => Ok(Isa::Neon),
            _ => Err(IsaError::Unknown(s.to_string())),
        }
    }
}

/// Ways of associativity of this CPU's level-1 data cache, from CPUID
/// (Intel's deterministic cache parameters, leaf 4; AMD's, leaf
/// 0x8000001D, or its L1 descriptor, leaf 0x80000005), measured once per
/// process; `None` where it cannot tell (other architectures, a hypervisor
/// that hides the leaves). The 1×1 GEMM asks it whether rows of A that alias
/// in the L1 must be copied apart ([`crate::gemm`]'s `packs_pixels`).
pub(crate) fn l1d_ways() -> Option<usize> {
    static WAYS: std::sync::OnceLock<Option<usize>> = std::sync::OnceLock::new();
    *WAYS.get_or_init(detect_l1d_ways)
}

#[cfg(target_arch = "x86_64")]
fn detect_l1d_ways() -> Option<usize> {
    // `unsafe` for the toolchains before `__cpuid_count` became a safe function.
    #[allow(unused_unsafe)]
    fn cpuid(leaf: u32, sub: u32) -> std::arch::x86_64::CpuidResult {
        // SAFETY: CPUID exists on every x86-64 CPU; an unknown leaf returns
        // zeros or the highest basic leaf's values, which the callers read as
        // "not described".
        unsafe { std::arch::x86_64::__cpuid_count(leaf, sub) }
    }
    // Leaves 4 and 0x8000001D list the caches one subleaf each: type in
    // EAX[4:0] (0 = no more, 1 = data, 3 = unified), level in EAX[7:5],
    // ways − 1 in EBX[31:22].
    let scan = |leaf: u32| {
        (0..16).map(|sub| cpuid(leaf, sub)).take_while(|r| r.eax & 31 != 0).find_map(|r| {
            let (kind, level) = (r.eax & 31, (r.eax >> 5) & 7);
            ((kind == 1 || kind == 3) && level == 1).then_some(((r.ebx >> 22) + 1) as usize)
        })
    };
    let max_basic = cpuid(0, 0).eax;
    let max_ext = cpuid(0x8000_0000, 0).eax;
    let amd_l1 = || {
        // L1 data cache associativity in ECX[23:16] (0xFF: fully associative).
        let ways = ((cpuid(0x8000_0005, 0).ecx >> 16) & 0xff) as usize;
        (ways != 0 && ways != 0xff).then_some(ways)
    };
    (if max_basic >= 4 { scan(4) } else { None })
        .or_else(|| if max_ext >= 0x8000_001d { scan(0x8000_001d) } else { None })
        .or_else(|| if max_ext >= 0x8000_0005 { amd_l1() } else { None })
}

#[cfg(not(target_arch = "x86_64"))]
fn detect_l1d_ways() -> Option<usize> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn l1d_ways_is_plausible_and_measured_once() {
        let ways = l1d_ways();
        assert!(ways.is_none_or(|w| (1..=64).contains(&w)), "{ways:?}");
        assert_eq!(ways, l1d_ways());
    }

    #[test]
    fn scalar_always_supported_and_names_round_trip() {
        assert!(Isa::Scalar.is_supported());
        for isa in Isa::ALL {
            assert_eq!(isa.name().parse::<Isa>().unwrap(), isa);
        }
        assert!(matches!("sse9".parse::<Isa>(), Err(IsaError::Unknown(_))));
        assert!(Isa::supported().contains(&Isa::best()));
    }

    #[test]
    fn best_prefers_the_widest_supported_simd() {
        let expected = if Isa::Avx512.is_supported() {
            Isa::Avx512
        } else if Isa::Avx2.is_supported() {
            Isa::Avx2
        } else if Isa::Neon.is_supported() {
            Isa::Neon
        } else {
            Isa::Scalar
        };
        assert_eq!(Isa::best(), expected);
    }
}

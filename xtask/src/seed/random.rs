//! Deterministic randomness. Every piece of seeded data draws from a ChaCha8 stream (stable
//! across platforms and versions of `rand_chacha`) whose seed is derived from the user's
//! `--seed` and the piece's place: its clinic, location, day, table. So a clinic's data does
//! not depend on how many clinics there are, and any table can be regenerated on its own
//! (the financials pass regenerates the production it sums) without storing anything.

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

pub(super) type Rng = ChaCha8Rng;

/// What a stream is for; part of its derivation, so that streams never coincide.
#[derive(Clone, Copy, Debug)]
#[repr(u64)]
pub(super) enum Stream {
    Clinic = 1,
    LocationDay = 2,
    Goals = 3,
}

/// The stream for `stream` at `place` (clinic number, location, day, ...).
pub(super) fn rng(seed: u64, stream: Stream, place: &[u64]) -> Rng {
    let mut state = mix(seed ^ 0x5eed_da7a_0000_0000);
    state = mix(state ^ stream as u64);
    for &part in place {
        state = mix(state.wrapping_add(part));
    }
    Rng::seed_from_u64(state)
}

/// SplitMix64's finalizer: a bijective mix, so that nearby inputs give unrelated seeds.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A version-4 uuid drawn from the stream (never `gen_random_uuid()`: ids are part of the
/// deterministic data).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) struct Uuid(pub [u8; 16]);

impl Uuid {
    pub(super) fn draw(rng: &mut Rng) -> Uuid {
        let mut bytes: [u8; 16] = rng.random();
        bytes[6] = (bytes[6] & 0x0f) | 0x40;
        bytes[8] = (bytes[8] & 0x3f) | 0x80;
        Uuid(bytes)
    }

    /// The canonical 36-character form.
    pub(super) fn text(&self) -> [u8; 36] {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = [b'-'; 36];
        let mut at = 0;
        for (i, byte) in self.0.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                at += 1;
            }
            out[at] = HEX[usize::from(byte >> 4)];
            out[at + 1] = HEX[usize::from(byte & 0x0f)];
            at += 2;
        }
        out
    }
}

impl std::fmt::Display for Uuid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(std::str::from_utf8(&self.text()).map_err(|_| std::fmt::Error)?)
    }
}

/// A uniform draw in `[low, high)`.
pub(super) fn between(rng: &mut Rng, low: f64, high: f64) -> f64 {
    low + (high - low) * rng.random::<f64>()
}

/// Multiplicative noise around 1: the mean of two uniform draws, so days cluster near
/// typical and outliers are rare.
pub(super) fn noise(rng: &mut Rng, spread: f64) -> f64 {
    1.0 + spread * (rng.random::<f64>() + rng.random::<f64>() - 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_stable_and_distinct() {
        let a = Uuid::draw(&mut rng(1, Stream::Clinic, &[1]));
        assert_eq!(a, Uuid::draw(&mut rng(1, Stream::Clinic, &[1])));
        assert_ne!(a, Uuid::draw(&mut rng(2, Stream::Clinic, &[1])));
        assert_ne!(a, Uuid::draw(&mut rng(1, Stream::Clinic, &[2])));
        assert_ne!(a, Uuid::draw(&mut rng(1, Stream::Goals, &[1])));
        let text = String::from_utf8(a.text().to_vec()).unwrap();
        assert_eq!(text.len(), 36);
        assert_eq!(&text[14..15], "4");
        assert!(text.chars().all(|c| c == '-' || c.is_ascii_hexdigit()));
    }
}

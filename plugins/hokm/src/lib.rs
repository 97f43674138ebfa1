//! # Hokm, as a hoard plugin
//!
//! The rules (see README.md for the variant) live in [`game`] and [`cards`]:
//! plain Rust that also builds natively, so the benchmark can compare the
//! plugin with the same logic called in-process. [`plugin`] is the thin WIT
//! glue, built only for wasm.

pub mod cards;
pub mod game;

#[cfg(target_arch = "wasm32")]
mod plugin;

/// One action on an encoded state, as the plugin's `act` does it: decode,
/// apply, encode. Returns the new state and the outcome if the game ended.
pub fn act(
    state: &[u8],
    player: &str,
    action: &str,
) -> Result<(Vec<u8>, Option<String>), game::Refusal> {
    let mut game = game::Game::decode(state)?;
    game.act(player, action)?;
    Ok((game.encode(), game.outcome().map(|o| o.to_string())))
}

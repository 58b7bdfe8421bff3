//! Colour maps shared by the CAM overlays `localize` writes and the report
//! figures that explain them.

/// The jet colour map, 0 → blue, 1 → red, as 0–255 channels.
pub fn jet(v: f32) -> [f32; 3] {
    let f = |x: f32| (1.5 - (4.0 * v - x).abs()).clamp(0.0, 1.0) * 255.0;
    [f(3.0), f(2.0), f(1.0)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jet_runs_blue_to_red() {
        assert_eq!(jet(0.0), [0.0, 0.0, 127.5]);
        assert_eq!(jet(1.0), [127.5, 0.0, 0.0]);
        assert_eq!(jet(0.5)[1], 255.0);
    }
}

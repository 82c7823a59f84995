//! GENEVE (placeholder).

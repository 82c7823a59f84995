//! Compiled packet classifiers (placeholder).

//! Compile validated policies once into indexed matchers; decide per request.

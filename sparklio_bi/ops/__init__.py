"""Running the bundle: bootstrap, serve, doctor."""

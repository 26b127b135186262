"""Tests of the Cekura API emulator (pytest_cekura.emulator)."""

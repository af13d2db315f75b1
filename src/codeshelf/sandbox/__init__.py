"""The sandbox: cs_test_ keys, test funds, synthetic codes and magic values."""

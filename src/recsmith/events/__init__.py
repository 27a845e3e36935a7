"""Events and catalog records: the typed boundary of recsmith."""

"""Built-in probes. Installed as ``geoprobe.probes``; each module is one probe family."""

"""The MQTT bridge: device ingest, acks, escalation, forwarding. The only part that
talks MQTT (paho lives in its client module; the embedded demo broker here too)."""

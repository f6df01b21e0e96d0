"""Talking to Asterisk: the AMI controller, the PBX connection, the two-instance test harness, the carrier simulator."""

"""What happens on an answered call: the FastAGI server, one channel, the script engine, call flows, media. Imports only common/."""

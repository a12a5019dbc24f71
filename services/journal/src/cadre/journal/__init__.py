"""The journal service: Work journal entries and attachments, leader reactions, peer
endorsements, tasks and study."""

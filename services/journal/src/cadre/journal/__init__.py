"""Journal: daily work entries with attachments, the feed and back-check search, leader
reactions, peer endorsements, tasks and study. Emits journal.* events; consumes the
directory (org tree) and attendance (closed days, leave) to record missed journals."""

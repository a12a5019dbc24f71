-- One database per service (DESIGN section 2).
CREATE DATABASE cadre_directory;
CREATE DATABASE cadre_attendance;
CREATE DATABASE cadre_journal;
CREATE DATABASE cadre_scoring;
CREATE DATABASE cadre_notify;

"""In-process fakes of the services cryptochart talks to."""

"""Images, offline-capable: the Debian base (pulled, or built with debootstrap), the wheelhouse,
and the component images, each tagged with a hash of its inputs."""

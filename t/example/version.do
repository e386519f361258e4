# The version shown in every footer, from the VERSION file if there is one.
if [ -e VERSION ]; then
    redo-ifchange VERSION
    cat VERSION
else
    redo-ifcreate VERSION
    echo dev
fi

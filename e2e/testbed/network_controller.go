package testbed

import (
	"context"
	"fmt"
	"log"
	"slices"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/dynamic/dynamicinformer"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
)

// networkController plays CCI's part for Networks: a new Network is Initializing at once and,
// NetworkDelay later (its SlowSubnets delay for a slow subnet), Active, or Failed when its subnet
// is one of FailedSubnets. Active and
// Failed are final. There is no Terminating: a deleted Network is gone at once.
type networkController struct {
	dyn      dynamic.Interface
	opts     CCIOptions
	informer cache.SharedIndexInformer
	queue    workqueue.TypedRateLimitingInterface[string]
	// firstSeen holds when each Network (by UID) was first seen; the worker alone uses it.
	firstSeen map[types.UID]time.Time
}

// RunNetworkController runs the CCI mode's network controller against the plane of cfg until
// ctx ends (`testbed cci-network-controller`).
func RunNetworkController(ctx context.Context, cfg *rest.Config, opts CCIOptions) error {
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return err
	}
	factory := dynamicinformer.NewDynamicSharedInformerFactory(dyn, 0)
	c := &networkController{
		dyn:      dyn,
		opts:     opts,
		informer: factory.ForResource(NetworkGVR).Informer(),
		queue: workqueue.NewTypedRateLimitingQueue(
			workqueue.NewTypedItemExponentialFailureRateLimiter[string](50*time.Millisecond, 5*time.Second)),
		firstSeen: map[types.UID]time.Time{},
	}
	enqueue := func(obj any) {
		if key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj); err == nil {
			c.queue.Add(key)
		}
	}
	if _, err := c.informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, obj any) { enqueue(obj) },
		DeleteFunc: enqueue,
	}); err != nil {
		return err
	}
	go func() {
		<-ctx.Done()
		c.queue.ShutDown()
	}()
	factory.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), c.informer.HasSynced) {
		return ctx.Err()
	}
	log.Printf("network controller: running (delay %v, failed subnets %v, slow subnets %v)",
		opts.NetworkDelay, opts.FailedSubnets, opts.SlowSubnets)
	for {
		key, quit := c.queue.Get()
		if quit {
			return nil
		}
		after, err := c.sync(ctx, key)
		switch {
		case err != nil:
			log.Printf("network controller: %s: %v (retrying)", key, err)
			c.queue.AddRateLimited(key)
		case after > 0:
			c.queue.Forget(key)
			c.queue.AddAfter(key, after)
		default:
			c.queue.Forget(key)
		}
		c.queue.Done(key)
	}
}

// sync moves one Network along; a positive duration asks to be called again after it.
func (c *networkController) sync(ctx context.Context, key string) (time.Duration, error) {
	obj, exists, err := c.informer.GetIndexer().GetByKey(key)
	if err != nil {
		return 0, err
	}
	if !exists {
		return 0, nil
	}
	net := obj.(*unstructured.Unstructured)
	if net.GetDeletionTimestamp() != nil {
		delete(c.firstSeen, net.GetUID())
		return 0, nil
	}
	state := NetworkState(net)
	if state == NetworkActive || state == NetworkFailed {
		delete(c.firstSeen, net.GetUID())
		return 0, nil
	}
	seen, ok := c.firstSeen[net.GetUID()]
	if !ok {
		seen = time.Now()
		c.firstSeen[net.GetUID()] = seen
	}
	subnet, _, _ := unstructured.NestedString(net.Object, "spec", "subnetID")
	network, _, _ := unstructured.NestedString(net.Object, "spec", "networkID")
	if wait := time.Until(seen.Add(c.opts.delay(subnet, network))); wait > 0 {
		if state == "" {
			return wait, c.setState(ctx, net, NetworkInitializing, "")
		}
		return wait, nil
	}
	for _, id := range []string{subnet, network} {
		if id != "" && slices.Contains(c.opts.FailedSubnets, id) {
			return 0, c.setState(ctx, net, NetworkFailed,
				fmt.Sprintf("subnet %s cannot be used (the testbed was told it is bad)", id))
		}
	}
	return 0, c.setState(ctx, net, NetworkActive, "")
}

func (c *networkController) setState(ctx context.Context, net *unstructured.Unstructured, state, message string) error {
	net = net.DeepCopy()
	status := map[string]any{"state": state}
	if message != "" {
		status["message"] = message
	}
	if err := unstructured.SetNestedMap(net.Object, status, "status"); err != nil {
		return err
	}
	_, err := c.dyn.Resource(NetworkGVR).Namespace(net.GetNamespace()).UpdateStatus(ctx, net, metav1.UpdateOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err == nil {
		log.Printf("network controller: %s/%s is %s %s", net.GetNamespace(), net.GetName(), state, message)
	}
	return err
}
